"""The test guest's serial console, read by a thread that timestamps lines.

The guest (tests/guest/README.md) prints one ASCII line per event:
heartbeats (``HB seq=N``), ``FILL``, ``READY``, ``VERIFY``, ``TOUCH`` ...
Every complete line is kept with the host's time.monotonic() of its
arrival, so that gaps in the heartbeat show the downtime the guest
really had.  A line that a migration cut in two (its start printed by
the source, its end by the destination) is kept as two fragments and
matches nothing.
"""

import re
import threading
import time


class GuestConsole:
    """Line access to one QEMU's serial port, given a connected socket."""

    def __init__(self, sock, name):
        self.name = name
        self._sock = sock
        self._cond = threading.Condition()
        self.lines = []             # [(host monotonic time, line)]
        self._closed = False
        self._thread = threading.Thread(target=self._reader, daemon=True,
                                        name=f'console-{name}')
        self._thread.start()

    def _reader(self):
        buf = b''
        while True:
            try:
                data = self._sock.recv(65536)
            except OSError:
                data = b''
            now = time.monotonic()
            if not data:
                break
            buf += data
            *complete, buf = buf.split(b'\n')
            if complete:
                with self._cond:
                    for raw in complete:
                        line = raw.decode('ascii', 'replace').strip('\r')
                        self.lines.append((now, line))
                    self._cond.notify_all()
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def send(self, cmd):
        self._sock.sendall(cmd.encode('ascii') + b'\r')

    def mark(self):
        """An index to pass as since= to wait_for(): lines from now on."""
        with self._cond:
            return len(self.lines)

    def wait_for(self, pattern, timeout, since=0):
        """Wait for a line at index >= since matching the regex.

        Returns (index, time, match).  Raises TimeoutError, or EOFError
        when the console closed first."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        i = since
        with self._cond:
            while True:
                while i < len(self.lines):
                    t, line = self.lines[i]
                    m = rx.match(line)
                    if m:
                        return i, t, m
                    i += 1
                if self._closed:
                    raise EOFError(f'{self.name}: console closed while '
                                   f'waiting for {pattern!r}')
                left = deadline - time.monotonic()
                if left <= 0:
                    tail = [ln for _, ln in self.lines[-5:]]
                    raise TimeoutError(f'{self.name}: no {pattern!r} within '
                                       f'{timeout} s; last lines: {tail}')
                self._cond.wait(left)

    def command(self, cmd, pattern, timeout):
        """Send a command; return the match of the first answer line."""
        since = self.mark()
        self.send(cmd)
        return self.wait_for(pattern, timeout, since)[2]

    def matching(self, pattern, since=0):
        """[(time, match)] of the lines from index since on that match
        the regex."""
        rx = re.compile(pattern)
        with self._cond:
            found = [(t, rx.match(line)) for t, line in self.lines[since:]]
        return [(t, m) for t, m in found if m]

    def heartbeats(self, since=0):
        """[(time, seq)] of the heartbeat lines from index since on."""
        return [(t, int(m.group(1)))
                for t, m in self.matching(r'HB seq=(\d+)', since)]

    def verify(self, timeout):
        """Have the guest verify its whole area now (`verify`); return the
        match of that pass's VERIFY line: pages, errors, ms.

        The `ping` sent along tells the VERIFY line of this pass from
        that of a pass that was already running (guest.verify=1): the
        guest restarts a running pass on `verify`, so the first VERIFY
        after the PONG is the new pass."""
        since = self.mark()
        token = f'verify-{since}'
        self.send('verify')
        self.send(f'ping {token}')
        i, _, _ = self.wait_for(rf'PONG {token}$', timeout, since)
        return self.wait_for(r'VERIFY pages=(\d+) errors=(\d+) ms=(\d+)',
                             timeout, i + 1)[2]

    def save(self, path, header='', t0=None):
        """Write every line received so far to path, each with its
        arrival time in seconds since t0 (time.monotonic(); default: the
        first line)."""
        with self._cond:
            lines = list(self.lines)
        if t0 is None:
            t0 = lines[0][0] if lines else 0
        with open(path, 'w', encoding='ascii', errors='replace') as f:
            f.write(header)
            for t, line in lines:
                f.write(f'{t - t0:10.3f} {line}\n')


def downtime_seen(src, dst, since=0, timeout=30.0):
    """The pause a migration gave the guest, as the guest saw it: from
    the last heartbeat that the source's console src printed (from index
    since on) to the first that the destination's console dst printed,
    in host time.  Waits up to timeout s for that first heartbeat.

    Returns {'downtime_seen_ms': pause, 'hb_seq_gap': seq difference}
    (the gap is 1, or 2 when the switchover cut a line in two), or {}
    when either side printed none."""
    try:
        dst.wait_for(r'HB seq=', timeout=timeout)
    except (TimeoutError, EOFError):
        return {}
    sbeats = src.heartbeats(since)
    dbeats = dst.heartbeats()
    if not sbeats or not dbeats:
        return {}
    gap = dbeats[0][0] - sbeats[-1][0]
    return {'downtime_seen_ms': gap * 1000,
            'hb_seq_gap': dbeats[0][1] - sbeats[-1][1]}
