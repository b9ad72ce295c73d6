"""`webhooks_filter_matches(filter, body)`: webhooks/filters.py `matches` in PL/pgSQL, so the
PostgreSQL fan-out evaluates content filters inside its one statement (webhooks/services/
events.py). PostgreSQL only; a no-op elsewhere. tests/webhooks/test_filter_sql.py holds the
two to the same answers."""

from django.db import migrations

# A path resolves like filters.resolve: a segment indexes an object by key, an array by an
# ASCII decimal index, anything else (or a missing key) is missing (SQL NULL; JSON null is
# 'null'::jsonb). Numbers compare as numeric (the decimal their JSON says), strings in
# codepoint order (COLLATE "C" on UTF-8), never a number with a string or a boolean.
FUNCTION = r"""
CREATE FUNCTION webhooks_filter_resolve(body jsonb, path text) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    v jsonb := body;
    segment text;
BEGIN
    IF path = '' THEN
        RETURN NULL;
    END IF;
    FOREACH segment IN ARRAY string_to_array(path, '.') LOOP
        CASE jsonb_typeof(v)
            WHEN 'object' THEN
                v := v -> segment;
            WHEN 'array' THEN
                IF segment ~ '^[0-9]+$' AND segment::numeric < jsonb_array_length(v) THEN
                    v := v -> segment::numeric::int;
                ELSE
                    RETURN NULL;
                END IF;
            ELSE
                RETURN NULL;
        END CASE;
        IF v IS NULL THEN
            RETURN NULL;
        END IF;
    END LOOP;
    RETURN v;
END
$$;

CREATE FUNCTION webhooks_filter_holds(operator text, value jsonb, operand jsonb) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    kind text;
BEGIN
    IF operator = '$exists' THEN
        RETURN jsonb_typeof(operand) = 'boolean' AND (value IS NOT NULL) = operand::boolean;
    ELSIF operator = '$neq' THEN
        RETURN value IS NULL OR value <> operand;
    ELSIF operator = '$nin' THEN
        RETURN value IS NULL OR NOT EXISTS (SELECT 1 FROM jsonb_array_elements(operand) AS listed (element) WHERE listed.element = value);
    ELSIF value IS NULL THEN
        RETURN false;
    ELSIF operator = '$eq' THEN
        RETURN value = operand;
    ELSIF operator = '$in' THEN
        RETURN EXISTS (SELECT 1 FROM jsonb_array_elements(operand) AS listed (element) WHERE listed.element = value);
    ELSIF operator = '$startsWith' THEN
        RETURN jsonb_typeof(value) = 'string' AND jsonb_typeof(operand) = 'string'
           AND starts_with(value #>> '{}', operand #>> '{}');
    ELSIF operator NOT IN ('$gt', '$gte', '$lt', '$lte') THEN
        RETURN false;
    END IF;
    kind := jsonb_typeof(value);
    IF kind <> jsonb_typeof(operand) THEN
        RETURN false;
    ELSIF kind = 'number' THEN
        RETURN CASE operator
            WHEN '$gt' THEN value::numeric > operand::numeric
            WHEN '$gte' THEN value::numeric >= operand::numeric
            WHEN '$lt' THEN value::numeric < operand::numeric
            ELSE value::numeric <= operand::numeric
        END;
    ELSIF kind = 'string' THEN
        RETURN CASE operator
            WHEN '$gt' THEN (value #>> '{}') COLLATE "C" > (operand #>> '{}') COLLATE "C"
            WHEN '$gte' THEN (value #>> '{}') COLLATE "C" >= (operand #>> '{}') COLLATE "C"
            WHEN '$lt' THEN (value #>> '{}') COLLATE "C" < (operand #>> '{}') COLLATE "C"
            ELSE (value #>> '{}') COLLATE "C" <= (operand #>> '{}') COLLATE "C"
        END;
    END IF;
    RETURN false;
END
$$;

CREATE FUNCTION webhooks_filter_matches(filter jsonb, body jsonb) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    key text;
    condition jsonb;
    item jsonb;
    value jsonb;
    operator text;
    operand jsonb;
    found_one boolean;
BEGIN
    IF filter IS NULL OR filter IN ('null', '{}', '[]', '""', '0', 'false') THEN
        RETURN true;  -- Python's "not filter_"
    ELSIF jsonb_typeof(filter) <> 'object' THEN
        RETURN false;  -- never stored: validate_filter accepts objects only
    END IF;
    FOR key, condition IN SELECT * FROM jsonb_each(filter) LOOP
        IF key = '$and' THEN
            FOR item IN SELECT * FROM jsonb_array_elements(condition) LOOP
                IF NOT webhooks_filter_matches(item, body) THEN
                    RETURN false;
                END IF;
            END LOOP;
        ELSIF key = '$or' THEN
            found_one := false;
            FOR item IN SELECT * FROM jsonb_array_elements(condition) LOOP
                IF webhooks_filter_matches(item, body) THEN
                    found_one := true;
                    EXIT;
                END IF;
            END LOOP;
            IF NOT found_one THEN
                RETURN false;
            END IF;
        ELSE
            value := webhooks_filter_resolve(body, key);
            IF jsonb_typeof(condition) = 'object'
               AND EXISTS (SELECT 1 FROM jsonb_object_keys(condition) k WHERE starts_with(k, '$')) THEN
                FOR operator, operand IN SELECT * FROM jsonb_each(condition) LOOP
                    IF NOT webhooks_filter_holds(operator, value, operand) THEN
                        RETURN false;
                    END IF;
                END LOOP;
            ELSIF NOT webhooks_filter_holds('$eq', value, condition) THEN
                RETURN false;
            END IF;
        END IF;
    END LOOP;
    RETURN true;
END
$$;
"""

DROP = """
DROP FUNCTION IF EXISTS webhooks_filter_matches(jsonb, jsonb);
DROP FUNCTION IF EXISTS webhooks_filter_holds(text, jsonb, jsonb);
DROP FUNCTION IF EXISTS webhooks_filter_resolve(jsonb, text);
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FUNCTION)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [
        ("webhooks", "0012_lean_storage"),
    ]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
