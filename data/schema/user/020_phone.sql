-- user: an optional mobile number (E.164, "+4930123456") the notification
-- service texts; NULL when the user gave none.
ALTER TABLE users ADD COLUMN phone TEXT;
