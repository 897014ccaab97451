//! chat-contract: what chat-server and opsctl share on DynamoDB, written once so that
//! changing a field breaks the build of both sides, not a test.
//!
//! # Layout
//! - [`schema`]: the three tables as data (keys, indexes, TTL, recovery); `chat-server
//!   create-tables` creates them, the Terraform tests compare `terraform/` against them.
//! - [`admin`]: creating those tables and waiting for them (local endpoints and tests; on
//!   AWS, Terraform owns the tables).
//! - [`rollout`]: the items opsctl and the tasks share in the connections table: the fleet
//!   heartbeat, the rollout control record and opsctl's lease.

pub mod admin;
pub mod rollout;
pub mod schema;

#[cfg(test)]
mod house {
    #[test]
    fn the_crate_keeps_the_house_rules() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let problems = testkit::house::problems(&src, "lib.rs");
        assert!(problems.is_empty(), "{problems:#?}");
    }
}
