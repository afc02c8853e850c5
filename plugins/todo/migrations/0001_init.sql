-- Lists and items of the todo plugin. A list belongs to one user; an item
-- belongs to its list, so ownership of an item is its list's. Deleting a
-- user deletes their lists, deleting a list its items.
CREATE TABLE todo_lists (
    id bigserial PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES weft_users (id) ON DELETE CASCADE,
    -- the plugin checks 1..100 characters first, with a clear message;
    -- these checks only keep the table honest
    title text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 100),
    position integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
-- a user's lists in order (also serves WHERE user_id = ...)
CREATE INDEX todo_lists_user ON todo_lists (user_id, position);

CREATE TABLE todo_items (
    id bigserial PRIMARY KEY,
    list_id bigint NOT NULL REFERENCES todo_lists (id) ON DELETE CASCADE,
    text text NOT NULL CHECK (char_length(text) BETWEEN 1 AND 500),
    done boolean NOT NULL DEFAULT false,
    position integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
-- a list's items in order; also the cascade's and the counts' index
CREATE INDEX todo_items_list ON todo_items (list_id, position);
