import Foundation

/// One cell of a report table. Rates print with their counts: `97.3 % (973/1000)`.
public enum TableCell: Equatable, Sendable, ExpressibleByStringLiteral, JSONRepresentable {
    /// Free text.
    case text(String)
    /// A rate with its counts.
    case rate(Rate)
    /// A number with a fixed number of decimals (`n/a` when not finite).
    case number(Double, decimals: Int)
    /// An integer (a count).
    case integer(Int)

    /// A text cell.
    public init(stringLiteral value: String) { self = .text(value) }

    /// The cell as printed in Markdown and on the terminal.
    public var formatted: String {
        switch self {
        case .text(let text): return text
        case .rate(let rate): return rate.formatted()
        case .number(let value, let decimals):
            return value.isFinite ? String(format: "%.\(max(0, decimals))f", value) : "n/a"
        case .integer(let value): return String(value)
        }
    }

    /// True for cells that are right-aligned (everything but text).
    public var isNumeric: Bool {
        if case .text = self { return false }
        return true
    }

    /// The cell's value for `results.json` (a rate keeps its counts and interval).
    public var json: JSONValue {
        switch self {
        case .text(let text): return .string(text)
        case .rate(let rate): return rate.json
        case .number(let value, _): return .number(value)
        case .integer(let value): return .int(value)
        }
    }
}

/// A table of a report, rendered as a Markdown table (`| a | b |` with a header
/// separator; numeric columns right-aligned) or as aligned plain text for the terminal.
public struct ReportTable: Equatable, Sendable, JSONRepresentable {
    /// Column headers.
    public let columns: [String]
    /// Rows, each with one cell per column.
    public private(set) var rows: [[TableCell]]

    /// An empty table with these column headers.
    public init(columns: [String]) {
        precondition(!columns.isEmpty, "ReportTable: a table needs at least one column")
        self.columns = columns
        self.rows = []
    }

    /// Appends a row; it must have one cell per column.
    public mutating func addRow(_ cells: [TableCell]) {
        precondition(
            cells.count == columns.count,
            "ReportTable.addRow: \(cells.count) cells for \(columns.count) columns (\(columns))")
        rows.append(cells)
    }

    /// A column is right-aligned when it has rows and all its cells are numeric.
    private func isNumericColumn(_ column: Int) -> Bool {
        !rows.isEmpty && rows.allSatisfy { $0[column].isNumeric }
    }

    /// The Markdown table, one line per row, ending with a newline.
    public func markdown() -> String {
        func escape(_ text: String) -> String {
            text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "|", with: "\\|")
                .replacingOccurrences(of: "\r\n", with: " ").replacingOccurrences(of: "\n", with: " ")
        }
        func line(_ cells: [String]) -> String { "| " + cells.map(escape).joined(separator: " | ") + " |" }
        let separator = "|" + columns.indices.map { isNumericColumn($0) ? " ---: |" : " --- |" }.joined()
        return ([line(columns), separator] + rows.map { line($0.map(\.formatted)) }).joined(separator: "\n") + "\n"
    }

    /// Aligned plain text for the terminal: header, a dashed rule, rows; numeric
    /// columns right-aligned, columns separated by two spaces.
    public func plainText() -> String {
        let texts = rows.map { $0.map { $0.formatted.replacingOccurrences(of: "\n", with: " ") } }
        let widths = columns.indices.map { column in
            ([columns[column]] + texts.map { $0[column] }).map(\.count).max() ?? 0
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { column, text in
                let padding = String(repeating: " ", count: widths[column] - text.count)
                return isNumericColumn(column) ? padding + text : text + padding
            }.joined(separator: "  ").replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)
        }
        let rule = widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")
        return ([line(columns), rule] + texts.map(line)).joined(separator: "\n") + "\n"
    }

    /// `{columns, rows}` with every cell as JSON (rates keep their counts).
    public var json: JSONValue {
        ["columns": .array(columns.map { .string($0) }), "rows": .array(rows.map { .array($0.map(\.json)) })]
    }
}
