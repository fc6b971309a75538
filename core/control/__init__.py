"""The control socket: a daemon's engine, reachable by consoles and CLI calls.

`protocol` frames JSON messages (one per line, bounded); `server` serves the Engine's
public methods and events on a Unix socket in the state directory, to the owner only.
"""
