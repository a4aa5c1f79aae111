// The read-only MongoDB user of the dashboard and the read API (docker compose).
//
// MongoDB's image runs this once, as the root user, when it initialises an empty data volume
// (/docker-entrypoint-initdb.d). To add the user to a volume made before, run it by hand:
//
//   docker compose exec mongodb sh -c 'mongosh -u "$MONGO_INITDB_ROOT_USERNAME" \
//     -p "$MONGO_INITDB_ROOT_PASSWORD" --authenticationDatabase admin \
//     /docker-entrypoint-initdb.d/create-readonly-user.js'
//
// Its name, password and database come from the mongodb service's environment (.env):
// MONGO_READER_USER, MONGO_READER_PASSWORD, BTC_MONGO_DB. Running it again updates them.
const user = process.env.MONGO_READER_USER;
const password = process.env.MONGO_READER_PASSWORD;
const database = process.env.BTC_MONGO_DB || "btc";
if (!user || !password) {
  throw new Error("set MONGO_READER_USER and MONGO_READER_PASSWORD in .env");
}
const roles = [{ role: "read", db: database }];
const admin = db.getSiblingDB("admin");
if (admin.getUser(user) === null) {
  admin.createUser({ user: user, pwd: password, roles: roles });
  print(`created the read-only user ${user} (read on ${database})`);
} else {
  admin.updateUser(user, { pwd: password, roles: roles });
  print(`updated the read-only user ${user} (read on ${database})`);
}
