"""Test-session setup shared by every test."""
import os

# MindSpore's generated *_pb2 modules predate protobuf 4 and only load with the pure-Python
# protobuf backend, which `import mindspore` selects for itself. Streamlit imports protobuf
# first when the dashboard tests are collected before the MindSpore ones, locking in the
# upb backend and making every later `import mindspore` fail ("Descriptors cannot be created
# directly"). Choosing the backend before anything imports protobuf keeps both working.
os.environ.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")
