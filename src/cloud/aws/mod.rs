pub mod sign;
pub mod xml;
