"""archlock: lock, build and verify one PyTorch project across macOS arm64, linux amd64 and
linux arm64."""

__version__ = "0.1.0"
