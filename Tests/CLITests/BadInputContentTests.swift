import Foundation
import XCTest

/// Options out of range, models that do not fit, and corrupt model, detector and checkpoint files.
final class BadInputContentTests: BadInputTestCase {
    func testOptionsOutOfRange() throws {
        let f = try files
        let train = f.data + ["--output", f.output]
        let detector = f.data + ["--model", f.model, "--output", f.output]
        let attack = f.data + ["--model", f.model, "--output", f.output]
        let cases: [(String, [String], String)] = [
            ("dafar-train", train + ["--epochs", "-1"], "--epochs must be at least 1, got -1"),
            ("dafar-train", train + ["--epochs", "0"], "--epochs must be at least 1, got 0"),
            ("dafar-train", train + ["--batch-size", "0"], "--batch-size must be between 1 and 65536, got 0"),
            ("dafar-train", train + ["--learning-rate", "-0.1"], "--learning-rate must be a positive number"),
            ("dafar-train", train + ["--gradient-group-size", "-1"], "--gradient-group-size must be between 0 and 65536, got -1"),
            ("dafar-train", train + ["--learning-rate", "nan"], "--learning-rate must be a positive number"),
            ("dafar-train", train + ["--momentum", "1"], "--momentum must be in [0, 1)"),
            ("dafar-train", train + ["--lambda", "-2"], "--lambda must be a non-negative number"),
            ("dafar-train", train + ["--dataset", "imagenet"], "'imagenet' is invalid for '--dataset"),
            ("dafar-train", train + ["--optimizer", "rmsprop"], "'rmsprop' is invalid for '--optimizer"),
            ("dafar-train", train + ["--validation-fraction", "0.7"], "--validation-fraction must be in (0, 0.5)"),
            ("dafar-train", train + ["--threads", "0"], "--threads must be between 1 and 1024, got 0"),
            ("dafar-train", train + ["--epochs", "many"], "'many' is invalid for '--epochs"),
            ("dafar-train", f.data + ["--epochs", "2"], "Missing expected argument '--output"),
            ("dafar-detector", detector + ["--z", "0"], "--z must be a positive number, got 0"),
            ("dafar-detector", detector + ["--z", "-3"], "--z must be a positive number, got -3"),
            ("dafar-detector", detector + ["--batch-size", "0"], "--batch-size must be between 1 and 65536, got 0"),
            (
                "dafar-detector", detector + ["--gradient-group-size", "70000"],
                "--gradient-group-size must be between 0 and 65536, got 70000"
            ),
            ("dafar-detector", detector + ["--epochs", "-5"], "--epochs must be at least 1, got -5"),
            ("dafar-detector", detector + ["--dataset", "svhn"], "'svhn' is invalid for '--dataset"),
            ("dafar-detector", detector + ["--threshold", "fpr3"], "The value 'fpr3' is invalid for '--threshold <threshold>'"),
            ("dafar-detector", detector + ["--hidden-sizes", "64,0"], "--hidden-sizes must be positive integers"),
            ("dafar-attack", attack + ["--attack", "fgsm", "--eps", "1.5"], "--eps must be in (0, 1]"),
            ("dafar-attack", attack + ["--attack", "pgd", "--eps", "-0.1"], "--eps must be in (0, 1]"),
            ("dafar-attack", attack + ["--attack", "fgsm", "--eps", "0"], "--eps must be in (0, 1]"),
            ("dafar-attack", attack + ["--attack", "boundary"], "'boundary' is invalid for '--attack"),
            ("dafar-attack", attack + ["--attack", "fgsm", "--dataset", "mnist10"], "'mnist10' is invalid for '--dataset"),
            ("dafar-attack", attack + ["--attack", "fgsm", "--count", "0"], "--count must be at least 1, got 0"),
            ("dafar-attack", attack + ["--attack", "fgsm", "--batch-size", "0"], "--batch-size must be between 1 and 65536, got 0"),
            ("dafar-attack", attack + ["--attack", "jsma", "--gamma", "2"], "--gamma must be in (0, 1]"),
            ("dafar-attack", attack + ["--attack", "adaptive-pgd"], "--attack adaptive-pgd needs --detector FILE")
        ]
        for (tool, arguments, fragment) in cases {
            try expectFailure(tool, arguments, status: 64, [fragment, "see '\(tool) --help'"])
        }
    }

    /// A CIFAR model on MNIST images, and a CIFAR run's checkpoint resumed on MNIST.
    func testModelThatDoesNotFitTheData() throws {
        let f = try files
        try expectFailure(
            "dafar-detector", f.data + ["--model", f.cifarModel, "--output", f.output], status: 65,
            ["reads [3, 32, 32] images", "[1, 28, 28]"])
        try expectFailure(
            "dafar-attack", f.data + ["--model", f.cifarModel, "--attack", "fgsm", "--output", f.output], status: 65,
            ["reads [3, 32, 32] images", "[1, 28, 28]"])
        let checkpoint = f.folder.appendingPathComponent("mnist-run.checkpoint").path
        try? FileManager.default.removeItem(atPath: checkpoint)
        try FileManager.default.copyItem(atPath: f.cifarCheckpoint, toPath: checkpoint)
        try expectFailure(
            "dafar-train", f.data + ["--resume", "--checkpoint", checkpoint, "--output", f.output], status: 65,
            ["another dataset", "cifar10", "mnist"], alsoUnchanged: [checkpoint])
    }

    func testDetectorMadeForAnotherModel() throws {
        let f = try files
        try expectFailure(
            "dafar-attack", f.data + ["--model", f.otherModel, "--detector", f.detector, "--attack", "fgsm", "--output", f.output],
            status: 65, ["trained for another model", "dafar-detector"])
        try expectFailure(
            "dafar-attack", f.data + ["--model", f.model, "--detector", f.model, "--attack", "fgsm", "--output", f.output],
            status: 65, ["not a DAFAR detector"])
        try expectFailure("dafar-detector", f.data + ["--model", f.detector, "--output", f.output], status: 65, ["not a DAFAR model"])
    }

    /// Truncated, garbled and malicious model, detector and checkpoint files.
    func testCorruptModelDetectorAndCheckpointFiles() throws {
        let f = try files
        let model = try Data(contentsOf: URL(fileURLWithPath: f.model))
        let headerLength = model.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        var hugeHeader = model
        hugeHeader.replaceSubrange(0..<8, with: [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F])
        var badJSON = model  // a quote where the middle of the header has another character: the JSON breaks
        var middle = 8 + headerLength / 2
        while badJSON[middle] == UInt8(ascii: "\"") { middle += 1 }
        badJSON[middle] = UInt8(ascii: "\"")
        let escapes = Self.safetensors(header: #"{"evil\n\u001b[31mname":{"dtype":"F32","shape":[1],"data_offsets":[0,8]}}"#, data: 8)
        let longName = Self.safetensors(
            header: #"{"\#(String(repeating: "w", count: 100_000))":{"dtype":"F32","shape":[1],"data_offsets":[0,8]}}"#,
            data: 8)
        let corrupt: [(String, Data, String)] = [
            ("empty", Data(), "0 bytes long"),
            ("cut-in-header", model.prefix(1000), "header length \(headerLength) is larger than"),
            ("cut-in-data", model.prefix(model.count / 2), "beyond the"),
            ("huge-header-length", hugeHeader, "exceeds the limit of 100000000 bytes"),
            ("bad-json", badJSON, "not valid JSON"),
            ("garbage", Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 2654435761 >> 7) }), "Invalid safetensors file"),
            ("control-characters-in-a-name", escapes, "occupies 8 bytes but shape [1] of F32 needs 4 bytes"),
            ("100-kB-name", longName, "characters left out] ")
        ]
        // Every file goes to dafar-detector as the model, and in turn to one other reader: dafar-attack's
        // --model or --detector, or dafar-train's --resume checkpoint (which must stay as it was).
        for (index, (name, bytes, fragment)) in corrupt.enumerated() {
            let path = f.folder.appendingPathComponent("corrupt-\(name).safetensors").path
            try bytes.write(to: URL(fileURLWithPath: path))
            try expectFailure("dafar-detector", f.data + ["--model", path, "--output", f.output], status: 65, [path, fragment])
            switch index % 3 {
            case 0:
                try expectFailure(
                    "dafar-attack", f.data + ["--model", path, "--attack", "fgsm", "--output", f.output], status: 65, [fragment])
            case 1:
                try expectFailure(
                    "dafar-attack", f.data + ["--model", f.model, "--detector", path, "--attack", "fgsm", "--output", f.output],
                    status: 65, [fragment])
            default:
                try expectFailure(
                    "dafar-train", f.data + ["--resume", "--checkpoint", path, "--output", f.output], status: 65, [fragment],
                    alsoUnchanged: [path])
            }
        }
    }

    /// A well-formed model file whose last weight is NaN, and a detector run with nothing held out.
    func testNaNWeightsAndAnEmptyValidationSplit() throws {
        let f = try files
        var model = try Data(contentsOf: URL(fileURLWithPath: f.model))
        model.replaceSubrange((model.count - 4)..<model.count, with: [0x00, 0x00, 0xC0, 0x7F])  // quiet NaN, little endian
        let path = f.folder.appendingPathComponent("nan-model.safetensors").path
        try model.write(to: URL(fileURLWithPath: path))
        try expectFailure("dafar-detector", f.data + ["--model", path, "--output", f.output], status: 65, [path, "NaN or infinite"])
        try expectFailure(
            "dafar-attack", f.data + ["--model", path, "--attack", "fgsm", "--output", f.output], status: 65, ["NaN or infinite"])

        // 0.1 of 4 images per class rounds to none: the thresholds would have no clean scores.
        var tenPercent = f.data
        tenPercent[tenPercent.firstIndex(of: "--validation-fraction")! + 1] = "0.1"
        try expectFailure(
            "dafar-detector", tenPercent + ["--model", f.model, "--output", f.output], status: 65,
            ["validation split is empty", "--validation-fraction"])
        try expectFailure(
            "dafar-attack", tenPercent + ["--model", f.model, "--attack", "fgsm", "--split", "validation", "--output", f.output],
            status: 65, ["no images to attack", "validation split is empty"])
    }

    /// A safetensors file with `header` (padded) and `data` zero bytes.
    static func safetensors(header: String, data: Int) -> Data {
        var text = Array(header.utf8)
        text += [UInt8](repeating: 0x20, count: (8 - text.count % 8) % 8)
        return Data((0..<8).map { UInt8(truncatingIfNeeded: text.count >> (8 * $0)) } + text + [UInt8](repeating: 0, count: data))
    }
}
