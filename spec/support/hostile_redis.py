"""A fake Redis that misbehaves, for spec/hiredis_spec.lua (through spec/support/redis.lua).

    python3 spec/support/hostile_redis.py MODE PORT_FILE SENT_FILE

Listens on a free loopback port (written to PORT_FILE), takes one connection, waits for the
first bytes of a command, then answers as MODE says:
  endless-bulk   "$100000000" and then bytes without end
  endless-line   a status line that never ends ("+aaaa..." with no CR LF)
  huge-array     an array said to hold 100 million elements, then elements without end
  many-values    4096 arrays of 16 integers each: 69633 values in one reply
  unasked        "+OK" twice: the answer to the command, and one nobody asked for
  deep           20 arrays nested in one another
It writes at most 64 MiB, then writes the number of bytes it sent to SENT_FILE once the client has
closed the connection (or the 64 MiB are out) and exits. Stdlib only; loopback only.
"""
import os
import socket
import sys

LIMIT = 64 * 1024 * 1024
CHUNK = 64 * 1024


def endless(head, unit):
    yield head
    while True:
        yield unit * (CHUNK // len(unit))


def answer(mode):
    if mode == "endless-bulk":
        return endless(b"$100000000\r\n", b"a")
    if mode == "endless-line":
        return endless(b"+", b"a")
    if mode == "huge-array":
        return endless(b"*100000000\r\n", b":1\r\n")
    if mode == "many-values":
        return iter([b"*4096\r\n" + (b"*16\r\n" + b":1\r\n" * 16) * 4096])
    if mode == "unasked":
        return iter([b"+OK\r\n+OK\r\n"])
    if mode == "deep":
        return iter([b"*1\r\n" * 20 + b":1\r\n"])
    raise SystemExit("unknown mode " + mode)


def main():
    mode, port_file, sent_file = sys.argv[1:4]
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    with open(port_file + ".tmp", "w") as f:
        f.write(str(listener.getsockname()[1]))
    os.rename(port_file + ".tmp", port_file)
    conn, _ = listener.accept()
    conn.recv(4096)
    sent = 0
    try:
        for data in answer(mode):
            if sent >= LIMIT:
                break
            conn.sendall(data)
            sent += len(data)
        # what was sent is all there is: wait for the client to close
        while conn.recv(4096):
            pass
    except OSError:
        pass
    with open(sent_file + ".tmp", "w") as f:
        f.write(str(sent))
    os.rename(sent_file + ".tmp", sent_file)


if __name__ == "__main__":
    main()
