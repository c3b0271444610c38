//! Errors with a failure class, so `main` can choose the exit code.

use racklet_link::{Classify, FailureClass};

/// An error that carries its failure class.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Classified {
    pub class: FailureClass,
    pub message: String,
}

/// Makes an error of a given class.
pub fn fail(class: FailureClass, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Classified { class, message: message.into() })
}

/// Wraps any classified library error.
pub fn classify<E: Classify + std::fmt::Display>(e: E) -> anyhow::Error {
    fail(e.class(), e.to_string())
}

/// Bad input (exit 2).
pub fn bad_input(message: impl Into<String>) -> anyhow::Error {
    fail(FailureClass::BadInput, message)
}

/// The class of an error chain: the first classified error in it, bad input
/// for image and board-file errors, `Other` otherwise.
pub fn class_of(e: &anyhow::Error) -> FailureClass {
    for cause in e.chain() {
        if let Some(c) = cause.downcast_ref::<Classified>() {
            return c.class;
        }
        if let Some(l) = cause.downcast_ref::<racklet_link::LinkError>() {
            return l.class();
        }
        if let Some(racklet_image::ImageError::Interrupted { .. }) = cause.downcast_ref() {
            return FailureClass::Interrupted;
        }
        if let Some(o) = cause.downcast_ref::<racklet_image::output::OutputError>() {
            return if o.is_refusal() { FailureClass::BadInput } else { FailureClass::Io };
        }
        if cause.downcast_ref::<racklet_image::ImageError>().is_some()
            || cause.downcast_ref::<crate::boards::BoardFileError>().is_some()
            || cause.downcast_ref::<racklet_link::select::SelectorError>().is_some()
        {
            return FailureClass::BadInput;
        }
    }
    FailureClass::Other
}
