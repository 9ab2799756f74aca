-- Run once by the postgres image on an empty volume (docker-entrypoint-initdb.d):
-- the reference enterprise (the systems the demo acts on) gets its own database, so
-- every worker and the API act on the same CRM, finance and ERP tables.
CREATE DATABASE enterprise;
