//! Secret rotation, as AWS Secrets Manager does it.
//!
//! - [`schedule`]: RotationRules (`rate()`, AWS's six-field `cron()`, AutomaticallyAfterDays,
//!   Duration) → rotation windows; pure.
//! - [`event`], [`driver`]: the four steps (createSecret, setSecret, testSecret, finishSecret)
//!   with AWS's event JSON, run against one [`function::RotationFunction`].
//! - [`registry`]: `arn:aws:lambda:REGION:ACCOUNT:function:NAME` → a built-in rotator
//!   ([`builtin`]: PostgreSQL and MySQL/MariaDB, single user and alternating users), an
//!   external command or HTTP endpoint ([`external`]), or a deployed Lambda-style function.
//! - [`scheduler`]: finds due secrets through the host's time index, takes a per-secret lease
//!   in the store and drives the rotation; the host (the Secrets Manager service) keeps the
//!   durable state.
//!
//! Functions talk to Secrets Manager only through [`api::SecretsApi`] (the operations' JSON, as
//! over HTTP), so a built-in rotator behaves exactly as AWS's template functions do.

pub mod api;
pub mod builtin;
pub mod driver;
pub mod event;
pub mod external;
pub mod function;
pub mod registry;
pub mod schedule;
pub mod scheduler;

pub use api::{ApiError, SecretsApi};
pub use driver::Failure;
pub use event::{Event, Step};
pub use function::{CallbackEnv, CallbackSource, InvokeContext, RotationFunction};
pub use registry::{FunctionCheck, Registry};
pub use schedule::{Rules, Schedule, ScheduleError};
pub use scheduler::{Begun, Due, Host, Scheduler};
