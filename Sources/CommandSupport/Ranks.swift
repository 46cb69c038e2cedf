import ArgumentParser
import Distributed
import Tensors
import ToolkitCore

/// Runs `body` on every rank of `world`, then lets the ranks agree on its outcome with one
/// all-reduce of their exit statuses, so that a rank that failed (a bad file, a bad option found
/// late) stops every rank before the next collective instead of leaving them waiting.
///
/// When every rank succeeded it returns. Otherwise only the lowest failing rank (rank 0 when it
/// failed) prints its one-line error, MPI is finalized, and every rank throws `ExitCode` with that
/// rank's sysexits status, so the whole job exits with one line and one status. With a
/// `SingleProcessCommunicator` this is `reportingErrors(hint:body)`; `hint` adds option names to a
/// library error's line, as in `reportingErrors`.
public func agreeingOnErrors(
    _ world: any Communicator, hint: (ToolkitError) -> String? = { _ in nil },
    _ body: () throws -> Void
) throws {
    var caught: Error?
    do { try body() } catch { caught = error }
    let statuses = world.statuses(caught.map(exitStatus(of:)) ?? 0)
    guard let first = statuses.firstIndex(where: { $0 != 0 }) else { return }
    if world.rank == first, let caught {
        do { try reportingErrors(hint: hint) { throw caught } } catch let error as ValidationError {
            let name = CommandLine.arguments.first.map { String($0.split(separator: "/").last ?? "") } ?? "the command"
            printError("error: \(printable(error.message)) (see '\(name) --help')")
        } catch {}
    }
    world.finalize()
    throw ExitCode(statuses[first])
}

/// The sysexits status a command exits with for `error` (64 for usage errors, 70 for unexpected ones).
public func exitStatus(of error: Error) -> Int32 {
    switch error {
    case let error as ToolkitError: return error.cause.exitStatus
    case let error as ExitCode: return error.rawValue
    case is ValidationError: return ExitStatus.usage
    default: return ExitStatus.software
    }
}
