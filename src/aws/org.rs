//! AWS Organizations for `--accounts-from-org`: the Organization's accounts (every page), those
//! under some OUs (recursively), their tags, and its management account. With the base
//! credentials (the management account's or a delegated administrator's), in us-east-1 (the
//! service's one endpoint), through the same endpoint settings as EC2.

use super::{base_config, AwsError, AwsSettings};
use crate::model::OrgAccount;
use aws_sdk_organizations::types::ChildType;
use std::collections::BTreeMap;

pub struct Org {
    client: aws_sdk_organizations::Client,
}

impl Org {
    pub async fn connect(cfg: &AwsSettings) -> anyhow::Result<Org> {
        let (sdk, _) = base_config(cfg).await?;
        let conf = aws_sdk_organizations::config::Builder::from(&sdk)
            .region(aws_sdk_organizations::config::Region::new("us-east-1"))
            .build();
        Ok(Org {
            client: aws_sdk_organizations::Client::from_conf(conf),
        })
    }

    /// The management account's id.
    pub async fn management_account(&self) -> Result<String, AwsError> {
        let out = self
            .client
            .describe_organization()
            .send()
            .await
            .map_err(AwsError::from)?;
        Ok(out
            .organization()
            .and_then(|o| o.master_account_id())
            .unwrap_or_default()
            .to_string())
    }

    /// Every account of the Organization.
    pub async fn accounts(&self) -> Result<Vec<OrgAccount>, AwsError> {
        let mut pages = self.client.list_accounts().into_paginator().send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            out.extend(
                page.map_err(AwsError::from)?
                    .accounts()
                    .iter()
                    .map(account_of),
            );
        }
        Ok(out)
    }

    /// The accounts under `parent` (an OU or a root), recursively.
    pub async fn accounts_under(&self, parent: &str) -> Result<Vec<OrgAccount>, AwsError> {
        let mut out = Vec::new();
        let mut todo = vec![parent.to_string()];
        while let Some(parent) = todo.pop() {
            let mut pages = self
                .client
                .list_accounts_for_parent()
                .parent_id(&parent)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                out.extend(
                    page.map_err(AwsError::from)?
                        .accounts()
                        .iter()
                        .map(account_of),
                );
            }
            let mut pages = self
                .client
                .list_children()
                .parent_id(&parent)
                .child_type(ChildType::OrganizationalUnit)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(AwsError::from)?;
                todo.extend(
                    page.children()
                        .iter()
                        .filter_map(|c| c.id().map(String::from)),
                );
            }
        }
        Ok(out)
    }

    /// An account's tags.
    pub async fn tags(&self, account_id: &str) -> Result<BTreeMap<String, String>, AwsError> {
        let mut pages = self
            .client
            .list_tags_for_resource()
            .resource_id(account_id)
            .into_paginator()
            .send();
        let mut out = BTreeMap::new();
        while let Some(page) = pages.next().await {
            for t in page.map_err(AwsError::from)?.tags() {
                out.insert(t.key().to_string(), t.value().to_string());
            }
        }
        Ok(out)
    }
}

fn account_of(a: &aws_sdk_organizations::types::Account) -> OrgAccount {
    OrgAccount {
        id: a.id().unwrap_or_default().to_string(),
        name: a.name().unwrap_or_default().to_string(),
        status: a
            .status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
    }
}
