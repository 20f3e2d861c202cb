//! Application-consistent snapshots: the hooks around an instance's snapshot calls. `policy` (pure:
//! the settings, the hooks' environment, what a failed pre hook means), `local` (a command run
//! through `sh -c` in its own process group, killed at its timeout), `script` (pure: `--freeze
//! ssm`'s freeze and thaw scripts), `ssm` (a script run through SSM Run Command, followed to its
//! end), `around` (pre hook, snapshot, post hook that always runs once the pre hook started).

pub mod around;
pub mod local;
pub mod policy;
pub mod script;
pub mod ssm;
