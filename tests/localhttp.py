"""A test's (or a bench's) HTTP server on loopback; standard library only, so bench/ can use it too."""

from __future__ import annotations

import http.server
import socket
import threading


class LocalHTTPServer(http.server.ThreadingHTTPServer):
    """A test's HTTP server on 127.0.0.1 (`port`), serving from a daemon thread until close(). It listens
    with the system's full backlog: socketserver's default of 5 drops SYNs in a burst of new connections,
    and each dropped SYN costs the client a 1 s retransmit."""

    request_queue_size = socket.SOMAXCONN
    daemon_threads = True

    def __init__(self, handler: type[http.server.BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.port = int(self.server_address[1])
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.shutdown()
        self.server_close()
