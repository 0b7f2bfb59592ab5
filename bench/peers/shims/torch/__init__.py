"""Bench-only stand-in for `torch`, put on PYTHONPATH by bench/peers/whisperlive.ts.

WhisperLive's faster-whisper server path imports torch only to ask `torch.cuda.is_available()` (and, on
a GPU, the device capability). Installing the real torch would pull in gigabytes of CUDA wheels that
the CPU path never uses; this module answers "no CUDA" instead. Anything else touching it fails loudly.
"""


class _Cuda:
    @staticmethod
    def is_available() -> bool:
        return False

    @staticmethod
    def device_count() -> int:
        return 0

    @staticmethod
    def get_device_capability(device=None):
        raise RuntimeError("bench torch shim: no CUDA")


cuda = _Cuda()
__version__ = "0.0.0+bench-shim"


def __getattr__(name):
    raise AttributeError(f"bench torch shim: torch.{name} is not provided (WhisperLive's faster-whisper path should not need it)")
