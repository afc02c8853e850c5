ALTER TABLE dbtest_items ADD COLUMN ok_column text;
ALTER TABLE no_such_table ADD COLUMN x integer;
