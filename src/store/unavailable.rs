//! The object-store client in a build without the `object-storage` feature:
//! it cannot be opened, so no value of it exists and its other calls are
//! never reached.

use super::{Object, StoreError};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::{Path, PathBuf};

pub struct Remote {
    never: Infallible,
}

impl Remote {
    pub fn open(url: &str) -> Result<Remote, StoreError> {
        Err(StoreError::Open {
            url: url.to_string(),
            message: "this postmortem was built without object storage; build it with `--features object-storage` \
                      (the Python wheel has it), or copy the files to a local folder"
                .into(),
        })
    }

    pub fn url(&self) -> &str {
        match self.never {}
    }

    pub fn single(&self) -> bool {
        match self.never {}
    }

    pub fn list(&mut self) -> Result<(BTreeMap<String, Object>, bool), StoreError> {
        match self.never {}
    }

    pub fn fetch(&self, _objects: &[(String, u64, PathBuf)], _ranged: bool, _stop_at_error: bool) -> Vec<(String, Result<(), StoreError>)> {
        match self.never {}
    }

    pub fn upload(&self, _relative: &str, _file: &Path) -> Result<(), StoreError> {
        match self.never {}
    }
}
