"""The Gradio app over cam_core (see README, Layout)."""
