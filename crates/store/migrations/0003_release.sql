-- The release an event was reported from, so verification asks the
-- database which events recurred on a new release instead of reading and
-- parsing their payloads.
ALTER TABLE signals ADD COLUMN release TEXT;
