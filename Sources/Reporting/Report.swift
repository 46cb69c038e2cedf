import Foundation
import ToolkitCore
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The layout of `results.json` written by `Report`.
public enum ReportFormat {
    /// The `format` field of `results.json`.
    public static let name = "dafar-evaluation-results"
    /// Version of the `results.json` layout.
    public static let version = "1"
}

/// A figure of a report: a chart and the SVG file it is written to.
public struct ReportFigure: Sendable {
    /// The chart.
    public let chart: any SVGChart
    /// Plain file name ending in `.svg`, written next to `report.md`.
    public let fileName: String
    /// Caption shown under the figure in `report.md`.
    public let caption: String
}

/// One element of a report section, in reading order.
public enum ReportBlock: Sendable {
    /// A paragraph of Markdown text.
    case paragraph(String)
    /// A table.
    case table(ReportTable)
    /// A figure, referenced from `report.md` and written as its own SVG file.
    case figure(ReportFigure)
}

/// A titled section of a report: paragraphs, tables and figures in order.
public struct ReportSection: Sendable {
    /// Section title (a `##` heading).
    public var title: String
    /// The content, in order.
    public private(set) var blocks: [ReportBlock] = []

    /// An empty section.
    public init(title: String) { self.title = title }

    /// Appends a paragraph of Markdown text.
    public mutating func addParagraph(_ text: String) { blocks.append(.paragraph(text)) }

    /// Appends a table.
    public mutating func addTable(_ table: ReportTable) { blocks.append(.table(table)) }

    /// Appends a figure written to `fileName` (a plain name ending in `.svg`; checked when the report is written).
    public mutating func addFigure(_ chart: any SVGChart, fileName: String, caption: String) {
        blocks.append(.figure(ReportFigure(chart: chart, fileName: fileName, caption: caption)))
    }
}

/// A report builder: sections with tables, text and figures, plus a `results`
/// JSON tree. `write(to:)` produces `report.md`, `results.json` (every number of
/// `results` and of every table, with counts) and one SVG per figure.
public struct Report: Sendable {
    /// Report title (the `#` heading).
    public var title: String
    /// Sections in order.
    public private(set) var sections: [ReportSection] = []
    /// Machine-readable results, written under `"results"` in `results.json`.
    public var results: [String: JSONValue] = [:]

    /// An empty report.
    public init(title: String) { self.title = title }

    /// Appends a finished section.
    public mutating func addSection(_ section: ReportSection) { sections.append(section) }

    /// Builds and appends a section: `report.addSection("Detection") { $0.addTable(table) }`.
    public mutating func addSection(_ title: String, _ build: (inout ReportSection) -> Void) {
        var section = ReportSection(title: title)
        build(&section)
        sections.append(section)
    }

    /// All figures of all sections, in order.
    public var figures: [ReportFigure] {
        sections.flatMap(\.blocks).compactMap { if case .figure(let figure) = $0 { return figure } else { return nil } }
    }

    /// The Markdown text of `report.md`.
    public func markdown() -> String {
        var parts = ["# \(title)"]
        for section in sections {
            parts.append("## \(section.title)")
            for block in section.blocks {
                switch block {
                case .paragraph(let text): parts.append(text)
                case .table(let table): parts.append(table.markdown().trimmingCharacters(in: .newlines))
                case .figure(let figure):
                    let alt = figure.caption.replacingOccurrences(of: "]", with: "\\]")
                    parts.append("![\(alt)](\(figure.fileName))\n\n*\(figure.caption)*")
                }
            }
        }
        return parts.joined(separator: "\n\n") + "\n"
    }

    /// The tables of the report as aligned plain text, each under its section title.
    public func summary() -> String {
        sections.compactMap { section -> String? in
            let tables = section.blocks.compactMap { if case .table(let table) = $0 { return table.plainText() } else { return nil } }
            return tables.isEmpty ? nil : ([section.title] + tables).joined(separator: "\n")
        }.joined(separator: "\n")
    }

    /// The document written to `results.json`: format, version, title, `results`,
    /// every table by section and the figure file names.
    public var resultsDocument: JSONValue {
        let tables = sections.flatMap { section in
            section.blocks.compactMap { block -> JSONValue? in
                guard case .table(let table) = block else { return nil }
                return [
                    "section": .string(section.title), "columns": table.json["columns"] ?? .null,
                    "rows": table.json["rows"] ?? .null
                ]
            }
        }
        return [
            "format": .string(ReportFormat.name), "version": .string(ReportFormat.version),
            "title": .string(title), "results": .object(results), "tables": .array(tables),
            "figures": .array(figures.map { .string($0.fileName) })
        ]
    }

    /// Writes the SVG figures, then `results.json`, then `report.md` into `directory`
    /// (created if missing), each atomically (temporary file in the same folder,
    /// fsync, rename). Returns the written files in that order.
    @discardableResult
    public func write(to directory: URL) throws -> [URL] {
        var seen = Set<String>()
        for figure in figures {
            try Report.validateFigureName(figure.fileName)
            guard seen.insert(figure.fileName.lowercased()).inserted else {
                throw ReportError.duplicateFileName(figure.fileName)
            }
        }
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw ReportError.writeFailed(path: directory.path, reason: error.localizedDescription)
        }
        var written: [URL] = []
        for figure in figures {
            let url = directory.appendingPathComponent(figure.fileName)
            try replaceContents(of: url, with: figure.chart.svg())
            written.append(url)
        }
        let resultsURL = directory.appendingPathComponent("results.json")
        let json: Data
        do { json = try resultsDocument.serialized() } catch {
            throw ReportError.writeFailed(path: resultsURL.path, reason: "JSON encoding failed: \(error)")
        }
        try replaceContents(of: resultsURL, with: json)
        let markdownURL = directory.appendingPathComponent("report.md")
        try replaceContents(of: markdownURL, with: markdown())
        return written + [resultsURL, markdownURL]
    }

    /// Throws unless `name` is a plain, visible file name ending in `.svg`.
    static func validateFigureName(_ name: String) throws {
        let reason: String?
        if !name.lowercased().hasSuffix(".svg") || name.count <= 4 {
            reason = "a figure file name must end in .svg"
        } else if name.contains("/") || name.contains("\\") || name.contains("\0") {
            reason = "it must not contain a path"
        } else if name.hasPrefix(".") {
            reason = "it must not start with a dot"
        } else if name.utf8.count > 255 {
            reason = "it is longer than 255 bytes"
        } else {
            reason = nil
        }
        if let reason { throw ReportError.invalidFileName(name, reason: reason) }
    }
}

/// Replaces `url` atomically (`AtomicFile`): readers see the old or the new content, never a part.
private func replaceContents(of url: URL, with text: String) throws {
    try replaceContents(of: url, with: Data(text.utf8))
}

private func replaceContents(of url: URL, with data: Data) throws {
    do {
        try AtomicFile.write([UInt8](data), to: url)
    } catch let error as FileWriteError {
        throw ReportError.writeFailed(path: error.path, reason: error.reason)
    }
}
