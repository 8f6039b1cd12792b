"""The Gradio app over cam_core: layout in ui.py, callbacks in callbacks.py, drawing in render.py."""
