"""A real TCP proxy that can misbehave, to put between Picup and a real S3 server.

Not a mock: the bytes go over real sockets to the real server; the proxy only
does what a bad link or a sick NAS does: cuts connections after some bytes,
stalls, or refuses.

    with TcpProxy(upstream_port) as proxy:
        proxy.mode = "cut"; proxy.cut_after = 3_000_000   # drop each connection after 3 MB sent upstream
        proxy.mode = "stall"                               # accept, then never answer
        proxy.mode = "refuse"                              # close at once
        proxy.hold_after = 5_000_000                       # a link that hangs once 5 MB have gone upstream;
        proxy.held.wait()                                  # ...set when it does (the client is then mid-transfer)
        proxy.downstream = lambda chunk: chunk.replace(…)  # change what the server answers, chunk by chunk
"""

from __future__ import annotations

import socket
import threading


class TcpProxy:
    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1"):
        self.upstream = (upstream_host, upstream_port)
        self.mode = "pass"
        self.cut_after = 0
        self.delay_per_chunk = 0.0  # seconds to wait before forwarding each 64 KiB upstream: a slow link
        self.connections = 0
        self.hold_after: int | None = None  # forward this many bytes upstream in all, then hold the rest
        self.forwarded = 0  # bytes forwarded upstream since the last reset()
        self.held = threading.Event()  # set once the hold has started
        self.downstream = None  # a function applied to each chunk the server answers (same length, please)
        self._count = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> "TcpProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._server.close()
        self.drop_all()

    def drop_all(self) -> None:
        for sock in list(self._sockets):
            try:
                sock.close()
            except OSError:
                pass
        self._sockets.clear()

    def reset(self, hold_after: int | None = None) -> None:
        """Drop every connection, zero the byte count and set a new hold (or none)."""
        self.drop_all()
        with self._count:
            self.hold_after, self.forwarded = hold_after, 0
            self.held.clear()

    def _take(self, size: int) -> int:
        """How many of ``size`` bytes may go upstream now; counts them, and starts the hold when it is reached."""
        with self._count:
            allowed = size if self.hold_after is None else max(min(size, self.hold_after - self.forwarded), 0)
            self.forwarded += allowed
            if allowed < size:
                self.held.set()
            return allowed

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            self.connections += 1
            if self.mode == "refuse":
                client.close()
                continue
            self._sockets.append(client)
            if self.mode == "stall":
                continue  # accepted, never answered
            try:
                upstream = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            self._sockets.append(upstream)
            limit = self.cut_after if self.mode == "cut" else None
            threading.Thread(target=self._pipe, args=(client, upstream, limit, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, None, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, limit: int | None, upstream: bool) -> None:
        sent = 0
        try:
            while chunk := src.recv(65536):
                if upstream and self.delay_per_chunk:
                    self._stop.wait(self.delay_per_chunk)
                if limit is not None and sent + len(chunk) > limit:
                    dst.sendall(chunk[: max(limit - sent, 0)])
                    break
                if not upstream and self.downstream:
                    chunk = self.downstream(chunk)
                if upstream and (allowed := self._take(len(chunk))) < len(chunk):
                    dst.sendall(chunk[:allowed])
                    while not self._stop.wait(0.05):  # hung: the client waits until it times out or is killed
                        if src.fileno() < 0:
                            return
                    return
                dst.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
