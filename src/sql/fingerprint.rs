pub fn fingerprint(sql: &str) -> String {
    sql.to_string()
}
