//! `tandem plan` (filled in below).

use serde::Serialize;

use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{0}")]
    Facts(String),
}

#[derive(Debug, Default, Serialize)]
pub struct Plan {}

pub async fn build(_config: &Config, _admin: Option<&str>) -> Result<Plan, PlanError> {
    Err(PlanError::Facts("not yet".into()))
}

pub fn render_markdown(_plan: &Plan) -> String {
    String::new()
}
