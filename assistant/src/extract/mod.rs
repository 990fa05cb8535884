pub mod llm;
pub mod offline;
