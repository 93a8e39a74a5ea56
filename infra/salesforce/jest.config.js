const { jestConfig } = require('@salesforce/sfdx-lwc-jest/config');

module.exports = {
    ...jestConfig,
    testMatch: ['**/__tests__/**/*.test.js'] // beside them, the tests' own data and helpers
};
