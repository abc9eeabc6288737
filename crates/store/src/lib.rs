//! suture's store: signals, incidents, the audit timeline and the durable
//! job queue, on embedded SQLite or PostgreSQL behind one schema.
