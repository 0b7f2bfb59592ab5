"""Bench-only launcher: WhisperLive's TranscriptionServer on the faster-whisper backend, CPU, one shared
model loaded from a local CTranslate2 folder (the same weights as kol's ggml file).

    python whisperlive_server.py --port P --model DIR --max-clients N
Prints "WHISPERLIVE_LISTENING <port>" once the socket accepts connections.
"""
import argparse
import logging
import socket
import threading
import time

from whisper_live.server import TranscriptionServer

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--model", required=True)
parser.add_argument("--max-clients", type=int, default=4)
args = parser.parse_args()
logging.basicConfig(level=logging.WARNING)


def announce():
    while True:
        try:
            with socket.create_connection(("127.0.0.1", args.port), timeout=0.5):
                print(f"WHISPERLIVE_LISTENING {args.port}", flush=True)
                return
        except OSError:
            time.sleep(0.1)


threading.Thread(target=announce, daemon=True).start()
TranscriptionServer().run(
    "127.0.0.1",
    port=args.port,
    backend="faster_whisper",
    faster_whisper_custom_model_path=args.model,
    single_model=True,
    max_clients=args.max_clients,
    max_connection_time=3600,
)
