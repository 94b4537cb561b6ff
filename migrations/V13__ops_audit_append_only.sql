-- The operators' audit trail is append-only. The application runs as one
-- database role, the table's owner (a superuser in the dev stack), so a
-- REVOKE would not bind it: as for the ledger (V12), triggers refuse every
-- change, every delete and TRUNCATE, for every role. Only a deliberate
-- `ALTER TABLE ops_audit DISABLE TRIGGER` gets past them.
CREATE OR REPLACE FUNCTION ops_audit_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS ops_audit_append_only ON ops_audit;
CREATE TRIGGER ops_audit_append_only BEFORE UPDATE OR DELETE ON ops_audit
    FOR EACH ROW EXECUTE FUNCTION ops_audit_refuse_change();

DROP TRIGGER IF EXISTS ops_audit_no_truncate ON ops_audit;
CREATE TRIGGER ops_audit_no_truncate BEFORE TRUNCATE ON ops_audit
    FOR EACH STATEMENT EXECUTE FUNCTION ops_audit_refuse_change();
