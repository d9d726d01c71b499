"""The protocol core: requests built as data, responses judged as data, no I/O.

Nothing here opens a socket, starts a thread or writes a file, and importing it loads no
transport, server or test library (tests/test_layers.py checks both).
"""
