//! Deployed functions as rotation functions: RotateSecret's RotationLambdaARN naming a function
//! deployed through the Lambda API invokes it with AWS's rotation event, as its execution role.

use std::sync::Arc;

use async_trait::async_trait;
use coffer_rotation::{Event, InvokeContext, RotationFunction};

use crate::{FunctionRecord, LambdaService, runtime};

/// How much of a failed function's log goes into the rotation record (after the error itself).
const LOG_IN_RECORD: usize = 1024;

struct Deployed {
    service: Arc<LambdaService>,
    account: String,
    region: String,
    record: FunctionRecord,
}

impl LambdaService {
    /// The function `name` deployed in `account`/`region`, as a rotation function.
    pub async fn rotation_function(
        self: &Arc<Self>,
        account: &str,
        region: &str,
        name: &str,
    ) -> Option<Arc<dyn RotationFunction>> {
        let record = self.find(account, region, name).await?;
        Some(Arc::new(Deployed {
            service: self.clone(),
            account: account.to_owned(),
            region: region.to_owned(),
            record,
        }))
    }
}

#[async_trait]
impl RotationFunction for Deployed {
    async fn invoke(&self, event: &Event, _ctx: &InvokeContext) -> Result<(), String> {
        let request_id = uuid::Uuid::new_v4().to_string();
        let o = self
            .service
            .run(
                &self.account,
                &self.region,
                &self.record,
                event.to_json().as_bytes(),
                &request_id,
            )
            .await
            .map_err(|e| format!("{}: {}", e.code, e.message))?;
        if !o.failed {
            return Ok(());
        }
        // The error as AWS would show it, then the end of the function's log; the driver removes
        // the secret's values from this before it is recorded.
        let kind = o.payload["errorType"].as_str().unwrap_or("Unhandled");
        let message = o.payload["errorMessage"].as_str().unwrap_or("");
        let log = runtime::tail(o.log_tail.trim(), LOG_IN_RECORD);
        Err(if log.is_empty() {
            format!("{} {kind}: {message}", self.record.name)
        } else {
            format!("{} {kind}: {message}\nlog: {log}", self.record.name)
        })
    }
}
