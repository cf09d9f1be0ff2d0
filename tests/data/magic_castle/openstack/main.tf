variable "cluster_name" {}

variable "domain" {}

variable "image" {}

variable "instances" {}

variable "volumes" {}

variable "public_keys" {}

variable "config_git_url" {}

variable "config_version" {}

variable "nb_users" {
  default = null
}

variable "guest_passwd" {
  default = null
}

variable "hieradata" {
  default = null
}

variable "hieradata_dir" {
  default = null
}

variable "sudoer_username" {
  default = null
}

variable "firewall_rules" {
  default = null
}

variable "software_stack" {
  default = null
}

variable "pool" {
  default = null
}

variable "skip_upgrade" {
  default = null
}

variable "puppetfile" {
  default = null
}

variable "eyaml_key" {
  default = null
}

variable "bastion_tags" {
  default = null
}

variable "puppet_conf" {
  default = null
}

variable "os_floating_ips" {
  default = null
}

variable "os_ext_network" {
  default = null
}

variable "subnet_id" {
  default = null
}

output "cluster_name" {
  value = var.cluster_name
}

output "domain" {
  value = var.domain
}

output "public_ip" {
  value = { login1 = "192.0.2.10" }
}

output "public_instances" {
  value = { login1 = { public_ip = "192.0.2.10", tags = ["login", "proxy", "public"] } }
}

output "accounts" {
  value     = { guests = { usernames = "user[01-10]", password = var.guest_passwd } }
  sensitive = true
}
