// Filled in when the private Tor network lands: starts it once for all end-to-end tests.
export default async function globalSetup(): Promise<void> {}
