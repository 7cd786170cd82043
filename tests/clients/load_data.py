"""LOAD DATA LOCAL INFILE with PyMySQL against one server address: loads each
file given (local_infile=True), then tries without local infile and with a
missing file, and prints what it observed as JSON so a test can compare a
direct connection with one through the proxy."""
import json
import sys

import pymysql

host, port, user, password, db = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
files = sys.argv[6:]
out = {"loads": []}
LOAD = "LOAD DATA LOCAL INFILE %s IGNORE INTO TABLE li FIELDS TERMINATED BY ',' ENCLOSED BY '\"'"


def checksum(cur):
    cur.execute("SELECT COUNT(*), SUM(CRC32(CONCAT_WS('|', id, name, amount, note))) FROM li")
    return [str(v) for v in cur.fetchone()]


c = pymysql.connect(host=host, port=port, user=user, password=password, database=db,
                    local_infile=True, autocommit=True)
cur = c.cursor()
cur.execute("CREATE TABLE li (id INT PRIMARY KEY, name VARCHAR(60), amount DECIMAL(12,2), note TEXT)")
for f in files:
    n = cur.execute(LOAD, (f,))
    out["loads"].append({
        "affected": n,
        "info": c._result.message.decode(),
        "warnings": c._result.warning_count,
        "table": checksum(cur),
    })

# A file the client cannot open: it sends an empty file, then reports.
try:
    cur.execute(LOAD, ("/nonexistent/tandem.csv",))
    out["missing_file"] = "loaded"
except pymysql.err.MySQLError as e:
    out["missing_file"] = [e.args[0]]
cur.execute("SELECT 'still usable'")
out["after_missing"] = cur.fetchone()[0]
c.close()

# A client that did not enable local infile gets the server's refusal.
c = pymysql.connect(host=host, port=port, user=user, password=password, database=db, autocommit=True)
cur = c.cursor()
try:
    cur.execute(LOAD, (files[0],))
    out["disabled"] = "loaded"
except pymysql.err.MySQLError as e:
    out["disabled"] = list(e.args)
out["table_after"] = checksum(cur)
c.close()
print(json.dumps(out))
