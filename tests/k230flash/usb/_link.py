"""The one TCP connection to the virtual board's server."""

import json
import os
import socket

_conn = None


def call(req):
    """Send one request, return the decoded answer."""
    global _conn
    if _conn is None:
        host, port = os.environ["RACKLET_K230_SIM"].rsplit(":", 1)
        s = socket.create_connection((host, int(port)), timeout=30)
        _conn = (s, s.makefile("r"))
    s, f = _conn
    s.sendall((json.dumps(req) + "\n").encode())
    line = f.readline()
    if not line:
        raise ConnectionError("the virtual K230's server closed the connection")
    return json.loads(line)
