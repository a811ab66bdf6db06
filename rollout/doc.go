// Package rollout rebuilds and rolls out registry distributions in dependency order: staging is built FROM
// production's image and snapshot FROM staging's, so a merge into production is live only once production,
// then staging, then snapshot are rebuilt, deployed and verified.
//
// The Controller is level-triggered: every pass compares, per distribution and bases first, the desired
// state (the branch head and the deployment its base runs) with the recorded one (the newest GitHub
// Deployment of the distribution's environment, whose payload holds both) and takes the next step. All
// state lives on GitHub — build runs, Deployments and their statuses — so any replica, or the same one after
// a restart, resumes where the last pass stopped without repeating a finished step.
package rollout
