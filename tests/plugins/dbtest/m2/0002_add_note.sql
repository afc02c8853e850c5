ALTER TABLE dbtest_items ADD COLUMN note text;
