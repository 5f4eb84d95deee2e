//! Permissions as RocketMQ's `Permission` holds them: bits, parsed from `DENY`, `PUB`, `SUB`, `PUB|SUB`.

/// Nothing is allowed, whatever else is set.
pub const DENY: u8 = 1;
/// Either PUB or SUB will do (RocketMQ's `ANY`, only ever needed, never granted).
pub const ANY: u8 = 1 << 1;
/// Produce to a topic.
pub const PUB: u8 = 1 << 2;
/// Consume from a topic, or act as a consumer group.
pub const SUB: u8 = 1 << 3;

/// Parses a permission as written in plain_acl.yml. RocketMQ reads an unknown word as DENY silently;
/// Apogee refuses the file instead, so a typo never quietly locks an account out.
pub fn parse(text: &str) -> Result<u8, String> {
    match text.trim() {
        "DENY" => Ok(DENY),
        "PUB" => Ok(PUB),
        "SUB" => Ok(SUB),
        "PUB|SUB" | "SUB|PUB" => Ok(PUB | SUB),
        other => Err(format!(
            "`{other}` is not a permission (DENY, PUB, SUB, PUB|SUB or SUB|PUB)"
        )),
    }
}

/// Whether `owned` grants `needed` (RocketMQ's `Permission.checkPermission`).
pub fn allows(needed: u8, owned: u8) -> bool {
    if owned & DENY != 0 {
        return false;
    }
    if needed & ANY != 0 {
        return owned & (PUB | SUB) != 0;
    }
    needed & owned != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_wins_and_pub_sub_grants_both() {
        assert!(allows(PUB, PUB | SUB) && allows(SUB, PUB | SUB));
        assert!(!allows(PUB, SUB) && !allows(SUB, PUB));
        assert!(!allows(PUB, DENY | PUB));
        assert!(allows(ANY, SUB) && !allows(ANY, DENY));
        assert_eq!(parse(" SUB|PUB "), Ok(PUB | SUB));
        assert!(parse("WRITE").unwrap_err().contains("WRITE"));
    }
}
