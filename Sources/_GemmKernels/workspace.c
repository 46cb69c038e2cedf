// The GEMM kernels' per-thread packing buffer; see workspace.h.
#include "workspace.h"

#include <pthread.h>
#include <stdlib.h>

static _Thread_local float *workspace = 0;
static _Thread_local size_t workspaceCount = 0;
static pthread_key_t workspaceKey;
static pthread_once_t workspaceKeyOnce = PTHREAD_ONCE_INIT;

static void make_workspace_key(void) { pthread_key_create(&workspaceKey, free); }

float *gemm_thread_workspace(size_t count) {
    if (count > workspaceCount) {
        pthread_once(&workspaceKeyOnce, make_workspace_key);
        free(workspace);
        workspaceCount = 0;
        workspace = aligned_alloc(64, (count * sizeof(float) + 63) / 64 * 64);
        pthread_setspecific(workspaceKey, workspace);
        if (!workspace) return 0;
        workspaceCount = count;
    }
    return workspace;
}
