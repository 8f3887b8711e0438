//! Tests of the keepalived.conf front end: lexer rules, each block, and the mapping onto the model.
