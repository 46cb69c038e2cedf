// libpng's simplified API (png_image_*): reading and writing whole images without setjmp.
#include <png.h>
