"""Runs the same checks with PyMySQL and mysql-connector-python against one
server address and prints what it observed as JSON, so a test can compare a
direct connection with one through the proxy."""
import json
import sys

import mysql.connector
import pymysql

host, port, user, password, db = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
out = {}

# PyMySQL's default is autocommit=False and it relies on the handshake's
# status flags to know the server's state: rollback() must undo the UPDATE.
c = pymysql.connect(host=host, port=port, user=user, password=password, database=db)
cur = c.cursor()
cur.execute("CREATE TABLE acct (id INT PRIMARY KEY, bal INT, b BLOB, vb VARBINARY(8), t TEXT) ENGINE=InnoDB")
cur.execute("INSERT INTO acct VALUES (1, 100, x'00ff01', x'cafe', 'text ✓')")
c.commit()
cur.execute("UPDATE acct SET bal = 0 WHERE id = 1")
c.rollback()
cur.execute("SELECT bal FROM acct WHERE id = 1")
out["balance_after_rollback"] = cur.fetchone()[0]
out["autocommit_flag"] = c.get_autocommit()

cur.execute("SELECT b, vb, t FROM acct")
b, vb, t = cur.fetchone()
out["blob_types"] = [type(b).__name__, type(vb).__name__, type(t).__name__]
out["blob_values"] = [b.hex(), vb.hex(), t]
out["description"] = [list(d) for d in cur.description]

cur.execute("CREATE PROCEDURE two() BEGIN SELECT 1 AS a; SELECT 'x' AS b, 2 AS c; END")
cur.execute("CALL two()")
sets = [list(cur.fetchall())]
while cur.nextset():
    sets.append([list(r) for r in cur.fetchall()])
out["call_sets"] = [[list(r) for r in s] for s in sets]

try:
    cur.execute("SIGNAL SQLSTATE '45001' SET MESSAGE_TEXT = 'custom failure'")
except pymysql.err.MySQLError as e:
    out["signal"] = list(e.args)

cur.execute("SET SESSION sql_mode = ''")
cur.execute("CREATE TABLE w (s VARCHAR(2))")
cur.execute("INSERT INTO w VALUES ('abcdef')")
out["insert_warnings"] = c.warning_count if hasattr(c, "warning_count") else cur._result.warning_count
c.commit()
c.close()

# mysql-connector-python: its own protocol implementation, prepared statements
# (binary protocol) and raw bytes.
m = mysql.connector.connect(host=host, port=port, user=user, password=password, database=db)
pc = m.cursor(prepared=True)
pc.execute("SELECT ?, ?, ?, ?, CAST(? AS DATE)", (7, "ünï", None, b"\x00\x01", "2024-02-29"))
out["connector_prepared"] = [repr(v) for v in pc.fetchone()]
pc.execute("SELECT b, vb FROM acct WHERE id = ?", (1,))
out["connector_blob"] = [repr(v) for v in pc.fetchone()]
rc = m.cursor()
rc.execute("SELECT b, vb, bal FROM acct")
out["connector_text"] = [repr(v) for v in rc.fetchone()]
try:
    rc.execute("INSERT INTO acct (id) VALUES (1)")
except mysql.connector.Error as e:
    out["connector_dup"] = [e.errno, e.sqlstate]
m.close()

print(json.dumps(out, sort_keys=True))
