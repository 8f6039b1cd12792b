"""Entry point (also the Hugging Face Space's app_file): `python app.py` serves the CAM Explainer."""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from app.ui import build_demo

demo = build_demo()

if __name__ == "__main__":
    demo.launch()  # public-safe limits on every launch: see app/hosting.py
