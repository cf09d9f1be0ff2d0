# The variables of Magic Castle 15.6.1's openstack module that MC Hub writes (same names, types,
# defaults and rules), so one main.tf.json serves both clouds; plus `sandbox_url`.

variable "config_git_url" {
  type        = string
  description = "HTTPS URL of the Puppet configuration git repository (puppet-magic_castle)."
  validation {
    condition     = can(regex("^https://.*\\.git$", var.config_git_url))
    error_message = "config_git_url must be an https URL of a git repository, ending in .git."
  }
}

variable "config_version" {
  type        = string
  description = "Tag, branch or commit of the Puppet configuration."
  validation {
    condition     = length(var.config_version) >= 1
    error_message = "config_version must not be empty: give a tag, branch or commit."
  }
}

variable "cluster_name" {
  type        = string
  description = "Name of the cluster; with domain it forms the cluster's hostname."
  validation {
    condition     = can(regex("^[a-z][0-9a-z-]{1,40}$", var.cluster_name))
    error_message = "cluster_name must start with a lowercase letter and hold 2 to 41 lowercase letters, digits or dashes."
  }
}

variable "domain" {
  type        = string
  description = "Domain of the cluster: its hostname is <cluster_name>.<domain>."
  validation {
    condition     = can(regex("^[a-z][0-9a-z-.]*$", var.domain))
    error_message = "domain must start with a lowercase letter and hold only lowercase letters, digits, dashes and dots."
  }
}

variable "image" {
  type        = any
  description = "Name of the OS image the instances boot from."
}

variable "nb_users" {
  type        = number
  default     = 0
  description = "Number of guest accounts (user01..userNN) sharing one password."
}

variable "instances" {
  description = "Instance rows: prefix => {type, tags, count (default 1), image?, disk_size?}."
  validation {
    condition     = alltrue([for prefix, row in var.instances : can(regex("^[a-z][0-9a-z-]{1,63}$", "${prefix}${lookup(row, "count", 1)}"))])
    error_message = "Each instance prefix followed by its count must start with a lowercase letter and hold at most 64 lowercase letters, digits or dashes."
  }
  validation {
    condition     = alltrue([for prefix, row in var.instances : contains(keys(row), "type") && contains(keys(row), "tags")])
    error_message = "Each row of instances needs a type (flavor) and a list of tags."
  }
  validation {
    condition     = sum(concat([0], [for prefix, row in var.instances : contains(lookup(row, "tags", []), "proxy") ? lookup(row, "count", 1) : 0])) < 2
    error_message = "At most one instance may carry the proxy tag."
  }
  validation {
    condition     = sum(concat([0], [for prefix, row in var.instances : contains(lookup(row, "tags", []), "login") ? 1 : 0])) < 2
    error_message = "At most one row of instances may carry the login tag."
  }
}

variable "volumes" {
  description = "Volumes: tag => name => {size (GB), type?}."
  validation {
    condition     = alltrue(flatten([for tag, named in var.volumes : [for name, volume in named : contains(keys(volume), "size")]]))
    error_message = "Each volume needs a size (GB)."
  }
}

variable "public_keys" {
  type        = list(string)
  description = "SSH public keys of the sudoer account."
}

variable "guest_passwd" {
  type        = string
  default     = ""
  sensitive   = true
  description = "Password of the guest accounts; empty means generate one."
  validation {
    condition     = length(var.guest_passwd) == 0 || length(var.guest_passwd) >= 8
    error_message = "guest_passwd must be empty (generate one) or at least 8 characters long."
  }
}

variable "hieradata" {
  type        = string
  default     = "---"
  description = "YAML hiera key-value pairs added to the Puppet environment."
  validation {
    condition     = var.hieradata == "" || can(yamldecode(var.hieradata))
    error_message = "hieradata must be empty or valid YAML."
  }
}

variable "sandbox_url" {
  type        = string
  description = "Base URL of the sandbox cloud (e.g. http://127.0.0.1:8790); the cluster's service URLs hang under it."
  validation {
    condition     = can(regex("^https?://", var.sandbox_url))
    error_message = "sandbox_url must be the sandbox cloud's http(s) base URL, e.g. http://127.0.0.1:8790."
  }
}
