"""An idle PyMySQL connection whose server-side connection dies, by KILL from
another connection (straight to the server), by wait_timeout, or by a
server SHUTDOWN. Reports how
the client's socket ended (EOF, reset, or bytes first), how long after the
cause, and what ping(reconnect=False) then raises, as JSON."""
import json
import socket
import sys
import time

import pymysql

host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
server_port, server_user, server_password, mode = int(sys.argv[5]), sys.argv[6], sys.argv[7], sys.argv[8]

c = pymysql.connect(host=host, port=port, user=user, password=password)
cur = c.cursor()
cur.execute("SELECT CONNECTION_ID()")
cid = cur.fetchone()[0]
if mode in ("kill", "shutdown"):
    k = pymysql.connect(host=host, port=server_port, user=server_user, password=server_password)
    started = time.monotonic()
    k.cursor().execute("KILL %d" % cid if mode == "kill" else "SHUTDOWN")
    try:
        k.close()
    except pymysql.err.MySQLError:
        pass
else:
    cur.execute("SET SESSION wait_timeout = 1")
    started = time.monotonic()

sock = c._sock
sock.settimeout(10)
data = b""
try:
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            outcome = "eof"
            break
        data += chunk
except socket.timeout:
    outcome = "still open"
except ConnectionResetError:
    outcome = "reset"
elapsed = time.monotonic() - started
try:
    c.ping(reconnect=False)
    ping = "ok"
except pymysql.err.MySQLError as e:
    ping = [type(e).__name__, e.args[0]]
print(json.dumps({"outcome": outcome, "bytes": data.hex(), "elapsed": elapsed, "ping": ping}))
