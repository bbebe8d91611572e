"""Local models only: any attempt to reach the Hugging Face hub fails instead of downloading.

Set before faster-whisper (and with it huggingface_hub) is imported, which reads it once."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
