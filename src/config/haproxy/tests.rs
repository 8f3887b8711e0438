//! Unit tests of the haproxy.cfg front end: sections, defaults inheritance, messages and the mapping onto the model.
