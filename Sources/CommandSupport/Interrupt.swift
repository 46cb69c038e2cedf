#if canImport(Glibc)
    import Glibc
#endif

/// Catches SIGINT so that long runs stop cleanly at the next safe point.
public enum Interrupt {
    nonisolated(unsafe) private static var flag: sig_atomic_t = 0

    /// Installs the handler: the first Ctrl-C sets `requested`, a second one exits at once.
    public static func install() {
        signal(SIGINT) { _ in
            if Interrupt.flag != 0 { _exit(130) }
            Interrupt.flag = 1
        }
    }

    /// True once SIGINT arrived.
    public static var requested: Bool { flag != 0 }
}
