// Runs once, on the first start of an empty data volume (docker-entrypoint-initdb.d), before the
// replica set exists: creates the application's user, which may only read and write its database.
const user = process.env.LEADFLOW_MONGO_USER || "leadflow";
const pwd = process.env.LEADFLOW_MONGO_PASSWORD;
const dbName = process.env.LEADFLOW_MONGO_DB || "leadflow";
if (!pwd) {
  throw new Error("LEADFLOW_MONGO_PASSWORD is not set");
}
db.getSiblingDB("admin").createUser({ user: user, pwd: pwd, roles: [{ role: "readWrite", db: dbName }] });
print(`created user ${user} with readWrite on ${dbName}`);
